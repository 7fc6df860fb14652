"""Video -> mouth-landmark graph shards. CPU work; the only part of lipjax that runs FaceMesh.

Pipeline: sources (which clips) -> video (frames) -> facemesh (raw landmarks)
-> normalize (face-relative, filled, smoothed) -> features (AU, geometry)
-> transcripts (speech mask) -> clip (one padded example) -> shards (TFRecords
+ tfds metadata) -> pipeline (parallel, resumable run) -> __main__ (command line).
"""
