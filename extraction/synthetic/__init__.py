"""Synthetic talking faces with known words: the demo's and the tests' data set.

phonetics (word -> ARPAbet -> visemes -> articulation track) -> faces (real
photos -> FaceMesh once -> speaker identities) -> render (articulation ->
warped frames) -> dataset (clips, splits, LRW folders, manifest, generator.json)
-> contact_sheet (a PNG to look at) -> __main__ (command line).
"""
