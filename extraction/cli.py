"""The one command-line convention of every lipjax program: absl flags, one-line errors, 3 exit codes.

Every entry point (`python -m lipjax.*`, `python -m extraction`, `python -m
extraction.synthetic`, `python -m extraction.demo`, `python experiments/*.py`) runs
through `run` (`run_commands` where the first argument names a subcommand):
- flags are absl flags spelled with underscores (`--max_frames 29`, `--seeds 0,1,2`);
  the hyphen spellings of the argparse days (`--max-frames`) name the same flag, and
  in a program that takes no arguments a list flag still takes the words after it
  (`--seeds 0 1 2`), so commands typed before the change run unchanged;
- exit status DONE (0); SOME_FAILED (1): done, but some inputs failed and each was
  reported; UNUSABLE (2): the command line or its input cannot be used;
- a user's mistake is one line on stderr, `PROGRAM: error: ...`, never a traceback
  (a bug keeps its traceback);
- `--help` (also `-h`, `-?`, `--helpshort`) prints the program's docstring and its
  flags and exits 0; `--helpfull` adds absl's own flags.

It lives in extraction because both sides import extraction (lipjax reads its shard
schema) and it imports only absl and the standard library: extraction's programs
start without JAX, lipjax's without mediapipe.
"""

import dataclasses
import gc
import logging as std_logging
import os
import sys
from typing import Callable, Mapping, NoReturn

from absl import app
from absl import flags
from absl import logging

DONE = 0
SOME_FAILED = 1
UNUSABLE = 2

# Errors a user can act on; anything else is a bug and keeps its traceback.
USER_ERRORS = (FileNotFoundError, ValueError, KeyError, OSError, app.UsageError)
HELP = ('--help', '-help', '-h', '-?', '--helpshort', '-helpshort')
HELP_FULL = ('--helpfull', '-helpfull')
USAGE_HINT = 'see --help'

# Flags defined by this module's helpers belong to the program that calls them (its --help).
flags.disclaim_key_flags()


def error_message(error: BaseException) -> str:
  """The readable one-line text of an error (a KeyError's own str() adds quotes and escapes)."""
  text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
  return '; '.join(line.strip() for line in text.splitlines() if line.strip())


def fail(program: str, message: str, status: int = UNUSABLE) -> NoReturn:
  """Ends the program with one line on stderr, `PROGRAM: error: MESSAGE`."""
  print(f'{program}: error: {message}', file=sys.stderr, flush=True)
  sys.exit(status)


class _IntegerListParser(flags.BaseListParser):
  """Parses a comma-separated list of integers."""

  def __init__(self):
    super().__init__(',', 'comma')
    self.syntactic_help = 'a comma separated list of integers'

  def parse(self, argument) -> list[int]:
    """The integers of '0,1,2' (or of a list, a default)."""
    words = argument if isinstance(argument, (list, tuple)) else super().parse(argument)
    try:
      return [int(word) for word in words]
    except ValueError:
      raise ValueError(f'expected comma-separated integers, got {argument!r}') from None

  def flag_type(self) -> str:
    """How --help names the type."""
    return 'comma separated list of integers'


def define_integer_list(name: str, default: list[int], help_text: str) -> None:
  """A flag taking comma-separated integers, e.g. `--seeds 0,1,2`."""
  flags.DEFINE(
    _IntegerListParser(), name, default, help_text, serializer=flags.CsvListSerializer(',')
  )


def _is_list(flag: flags.Flag) -> bool:
  """True for flags that hold several values (a comma list or a repeatable flag)."""
  return isinstance(flag, flags.MultiFlag) or isinstance(flag.parser, flags.BaseListParser)


def canonical_argv(
  argv: list[str], join_lists: bool, flag_values: flags.FlagValues = flags.FLAGS
) -> list[str]:
  """argv with hyphenated flag names underscored and, if join_lists, list flags' words joined.

  `--max-frames 29` -> `--max_frames 29`; `--seeds 0 1 2` -> `--seeds=0,1,2` and, for a
  repeatable flag, `--base a=1 b=2` -> `--base=a=1 --base=b=2`, as argparse's nargs='+'
  read them. Words after `--` are left alone.
  """
  out, i = [argv[0]], 1
  while i < len(argv):
    token = argv[i]
    i += 1
    if token == '--':
      out += argv[i - 1 :]
      break
    if not token.startswith('-') or token.lstrip('-')[:1].isdigit():
      out.append(token)
      continue
    dashes = '--' if token.startswith('--') else '-'
    name, equals, value = token[len(dashes) :].partition('=')
    underscored = name.replace('-', '_')
    if name not in flag_values and (
      underscored in flag_values or underscored.removeprefix('no') in flag_values
    ):
      name = underscored
    words = []
    if join_lists and not equals and name in flag_values and _is_list(flag_values[name]):
      while i < len(argv) and not argv[i].startswith('-'):
        words.append(argv[i])
        i += 1
    if len(words) > 1 and isinstance(flag_values[name], flags.MultiFlag):
      out += [f'{dashes}{name}={word}' for word in words]
    elif len(words) > 1:  # CSV, as absl's list flags read it: a word may hold a comma
      out.append(f'{dashes}{name}={flags.CsvListSerializer(",").serialize(words)}')
    else:
      out.append(f'{dashes}{name}{equals}{value}')
      out += words
  return out


def require(*names: str) -> None:
  """Raises a usage error naming the flags among names that were not given."""
  missing = [f'--{name}' for name in names if flags.FLAGS[name].value is None]
  if missing:
    raise app.UsageError(f'{" and ".join(missing)} {"is" if len(missing) == 1 else "are"} required')


def _print_help(text: str) -> None:
  """Prints help on stdout; a reader that stops early (`| head`) is no error."""
  try:
    print(text, flush=True)
  except BrokenPipeError:
    # Python flushes stdout again at exit; point it at /dev/null so that is quiet too.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _flags_help(description: str | None, full: bool) -> str:
  """The program's docstring (or a subcommand's description) and its flags."""
  description = description if description is not None else sys.modules['__main__'].__doc__
  lines = [(description or f'usage: {sys.argv[0]} [flags]').strip()]
  listing = flags.FLAGS.get_help() if full else flags.FLAGS.main_module_help()
  if listing:
    lines.append('\nflags:' + listing)
  if not full:
    lines.append('\nTry --helpfull to get a list of all flags.')
  return '\n'.join(lines)


def _flag_words(argv: list[str]) -> list[str]:
  """The arguments before `--`."""
  return argv[: argv.index('--')] if '--' in argv else argv


def run(
  main: Callable[[list[str]], int | None],
  program: str,
  define_flags: Callable[[], None] | None = None,
  *,
  argv: list[str] | None = None,
  takes_arguments: bool = True,
  description: str | None = None,
  replaced: Mapping[str, str] | None = None,
  usage_hint: str = USAGE_HINT,
  user_errors: tuple[type[BaseException], ...] = (),
) -> None:
  """Defines the flags, parses them and exits with main's status; user errors are one line.

  main(argv) gets the program path and the arguments left after the flags, and returns
  None or DONE, or SOME_FAILED once it has reported each failed input. takes_arguments
  False: any argument is a usage error. replaced: flag or config key -> what the user
  should do now, added to the error a command line using it gets. user_errors: more
  exception types that mean unusable input (exit UNUSABLE) rather than a bug.
  """
  if define_flags is not None:
    define_flags()
  replaced = replaced or {}

  def parse(args: list[str]) -> list[str]:
    words = _flag_words(args)
    if any(word in HELP + HELP_FULL for word in words[1:]):
      _print_help(_flags_help(description, any(word in HELP_FULL for word in words)))
      sys.exit(DONE)
    try:
      rest = flags.FLAGS(canonical_argv(args, join_lists=not takes_arguments))
    # config_flags raises AttributeError/KeyError/TypeError for a bad --config.KEY.
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
      now = [text for key, text in replaced.items() if f"'{key}'" in str(e)]
      hint = '; '.join(now) + '; drop the flag' if now else usage_hint
      fail(program, f'bad command line: {error_message(e)} ({hint})')
    if not takes_arguments and len(rest) > 1:
      fail(program, f'unexpected arguments {rest[1:]} ({usage_hint})')
    return rest

  def guarded(args: list[str]) -> int | None:
    try:
      return main(args)
    except user_errors + USER_ERRORS as e:
      hint = f' ({usage_hint})' if isinstance(e, app.UsageError) else ''
      message = f'{error_message(e)}{hint}'
    # Out of the except block the error's traceback and the frames it held are gone;
    # collecting now runs the failed run's teardown (iterators log as they are
    # destroyed), so the error stays the last line the user sees, not the chatter.
    gc.collect()
    fail(program, message)

  app.run(guarded, argv=argv, flags_parser=parse)


@dataclasses.dataclass(frozen=True)
class Command:
  """A subcommand: what it does (its --help text), its flags and its work (as for `run`)."""

  description: str
  main: Callable[[list[str]], int | None]
  define_flags: Callable[[], None] | None = None
  takes_arguments: bool = False


def run_commands(program: str, commands: Mapping[str, Command], argv: list[str] | None = None):
  """Runs the subcommand named by the first argument; only its flags are defined."""
  argv = list(sys.argv if argv is None else argv)
  name = argv[1] if len(argv) > 1 else None
  if name in HELP + HELP_FULL:
    _print_help(
      '\n'.join(
        [sys.modules['__main__'].__doc__.strip(), '', 'commands:']
        + [f'  {key}: {command.description.splitlines()[0]}' for key, command in commands.items()]
        + ['', f'Try `{program} COMMAND --help` for the flags of a command.']
      )
    )
    sys.exit(DONE)
  # Commands are spelled with hyphens (contact-sheet); the flags' underscores name them too.
  name = name and name.replace('_', '-')
  if name not in commands:
    problem = f'unknown command {argv[1]!r}: give one of' if name else 'give a command:'
    fail(program, f'{problem} {", ".join(commands)} ({USAGE_HINT})')
  command = commands[name]
  run(
    command.main,
    f'{program} {name}',
    command.define_flags,
    argv=[argv[0]] + argv[2:],
    takes_arguments=command.takes_arguments,
    description=command.description,
  )


def plain_logs() -> None:
  """Logs INFO and above as bare messages on stderr (extraction's progress lines), absl's at ERROR."""
  logging.get_absl_handler().setFormatter(std_logging.Formatter('%(message)s'))
  std_logging.getLogger().setLevel(std_logging.INFO)
  std_logging.getLogger('absl').setLevel(std_logging.ERROR)
