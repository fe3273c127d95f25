"""Where the training data sets live: the data-path table, its overrides, and checked look-ups.

``DATA_PATH`` has the shape of the official ``data_path.py``: for each matting data set a
``train`` and a ``valid`` split, each with an ``fgr`` folder (RGB foregrounds) and a ``pha``
folder (alpha mattes, same relative file layout); ``backgrounds`` has one folder per split.
Relative paths are taken under a data root (``data/`` by default), so a machine with the
data elsewhere changes one setting. Entries can be overridden, and new data sets added:

* from a JSON file: ``{"data_root": "/mnt/data", "data_path": {"videomatte240k":
  {"train": {"pha": "/fast/vm/pha"}}}}`` (a file holding only the nested table also works);
* from the command line: ``--data-root /mnt/data --data-config paths.json
  --data-path videomatte240k.train.pha=/fast/vm/pha --data-path backgrounds.valid=bg/val``
  (``add_data_path_arguments`` / ``data_path_from_args``);
* from Python: ``load_data_path(config=..., data_root=..., overrides=[...])``.

``resolve(name, split, table)`` returns the folders and raises ``DataPathError`` naming
the table entry, the path it points to and how to fix it when a folder is missing.
"""
import copy
import json
import os

__all__ = ['DATA_ROOT', 'DATA_PATH', 'DOWNLOAD_HINTS', 'SPLITS', 'KINDS', 'DataPathError',
           'load_data_path', 'parse_override', 'resolve', 'add_data_path_arguments', 'data_path_from_args']

DATA_ROOT = 'data'
SPLITS = ('train', 'valid')
KINDS = ('pha', 'fgr')

# Layouts of the public releases as they unpack (PhotoMatte13K is private; its entry is
# where your own photo mattes would go). 'valid' uses each release's test split.
DATA_PATH = {
    'videomatte240k': {
        'train': {'fgr': 'VideoMatte240K_JPEG_SD/train/fgr', 'pha': 'VideoMatte240K_JPEG_SD/train/pha'},
        'valid': {'fgr': 'VideoMatte240K_JPEG_SD/test/fgr', 'pha': 'VideoMatte240K_JPEG_SD/test/pha'},
    },
    'photomatte13k': {
        'train': {'fgr': 'PhotoMatte13K/train/fgr', 'pha': 'PhotoMatte13K/train/pha'},
        'valid': {'fgr': 'PhotoMatte13K/valid/fgr', 'pha': 'PhotoMatte13K/valid/pha'},
    },
    'photomatte85': {
        # Only 85 test images exist: both splits point at them (fine for evaluation, not training).
        'train': {'fgr': 'PhotoMatte85/fgr', 'pha': 'PhotoMatte85/pha'},
        'valid': {'fgr': 'PhotoMatte85/fgr', 'pha': 'PhotoMatte85/pha'},
    },
    'distinction': {
        'train': {'fgr': 'Distinctions-646/Train/FG', 'pha': 'Distinctions-646/Train/GT'},
        'valid': {'fgr': 'Distinctions-646/Test/FG', 'pha': 'Distinctions-646/Test/GT'},
    },
    'backgrounds': {
        'train': 'Backgrounds/train',
        'valid': 'Backgrounds/valid',
    },
}

DOWNLOAD_HINTS = {
    'videomatte240k': 'download VideoMatte240K (JPEG SD) from the dataset section of the official '
                      'BackgroundMattingV2 repository (PeterL1n/BackgroundMattingV2) and unpack it under the data root',
    'photomatte13k': 'PhotoMatte13K is not public; point this entry at your own fgr/pha folders',
    'photomatte85': 'download PhotoMatte85 from the official BackgroundMattingV2 repository and split its '
                    'RGBA PNGs with dataset.split_rgba_folder(src, fgr_dir, pha_dir)',
    'distinction': 'Distinctions-646 is available from its authors on request (HAttMatting, CVPR 2020)',
    'backgrounds': 'use any folder of background photos without people (the official training used '
                   'about 8000 indoor/outdoor photos)',
}
_GENERIC_HINT = 'point it at a folder of images'


class DataPathError(FileNotFoundError):
    """A data-path table entry is unknown or points to a missing folder; the message names it."""


def _entry_name(*keys):
    return 'DATA_PATH' + ''.join(f'[{k!r}]' for k in keys)


def _check_entry(name, entry):
    """Validate the shape of one data set's entry (catches typos in config files early)."""
    ok = isinstance(entry, dict) and all(
        isinstance(v, str) or (isinstance(v, dict) and all(isinstance(p, str) for p in v.values()))
        for v in entry.values())
    if not ok:
        raise ValueError(f'{_entry_name(name)} must map splits to {{"fgr": path, "pha": path}} '
                         f'(or, for backgrounds, splits to a path); got {entry!r}')


def _merge(table, update):
    """Deep-merge `update` into `table`: a config file only names the entries it changes."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(table.get(key), dict):
            _merge(table[key], value)
        else:
            table[key] = copy.deepcopy(value)


def parse_override(text):
    """'videomatte240k.train.pha=/data/pha' -> (('videomatte240k', 'train', 'pha'), '/data/pha')."""
    key, sep, value = text.partition('=')
    keys = tuple(k.strip() for k in key.split('.'))
    if not sep or not value or any(not k for k in keys) or len(keys) not in (2, 3):
        raise ValueError(f'bad data-path override {text!r}: expected NAME.SPLIT.KIND=PATH '
                         f'(e.g. videomatte240k.train.pha=/data/pha) or backgrounds.SPLIT=PATH')
    if keys[1] not in SPLITS:
        raise ValueError(f'bad data-path override {text!r}: split must be one of {SPLITS}')
    if len(keys) == 3 and keys[2] not in KINDS:
        raise ValueError(f'bad data-path override {text!r}: kind must be one of {KINDS}')
    if (keys[0] == 'backgrounds') != (len(keys) == 2):
        raise ValueError(f'bad data-path override {text!r}: backgrounds take backgrounds.SPLIT=PATH, '
                         f'matting data sets NAME.SPLIT.KIND=PATH')
    return keys, value.strip()


def load_data_path(config=None, data_root=None, overrides=(), base=None):
    """Build the effective table: `base` (default DATA_PATH) + JSON config + overrides.

    config: path of a JSON file (keys "data_root" and "data_path", or just a table).
    data_root: folder that relative entries are taken under (precedence: argument >
    config > DATA_ROOT). overrides: 'NAME.SPLIT.KIND=PATH' strings. Returns a new nested
    dict whose paths are joined with the root (absolute paths stay as they are); the
    module's DATA_PATH is never modified.
    """
    table = copy.deepcopy(DATA_PATH if base is None else base)
    root = None
    if config is not None:
        try:
            with open(config, encoding='utf-8') as f:
                data = json.load(f)
        except FileNotFoundError:
            raise DataPathError(f'data-path config {config} does not exist') from None
        except json.JSONDecodeError as e:
            raise ValueError(f'data-path config {config} is not valid JSON: {e}') from None
        if not isinstance(data, dict):
            raise ValueError(f'data-path config {config} must hold a JSON object')
        if 'data_root' in data or 'data_path' in data:
            root = data.get('data_root')
            data = data.get('data_path', {})
        _merge(table, data)
    for text in overrides or ():
        keys, value = parse_override(text)
        node = table
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    for name, entry in table.items():
        _check_entry(name, entry)
    root = data_root if data_root is not None else (root if root is not None else DATA_ROOT)

    def join(p):
        return p if os.path.isabs(p) else os.path.join(root, p)

    return {name: {split: join(v) if isinstance(v, str) else {k: join(p) for k, p in v.items()}
                   for split, v in entry.items()}
            for name, entry in table.items()}


def _missing(keys, path):
    hint = DOWNLOAD_HINTS.get(keys[0], _GENERIC_HINT)
    override = '.'.join(keys)
    return DataPathError(
        f'{_entry_name(*keys)} = {path} does not exist; {hint}, or override it with '
        f'--data-path {override}=PATH (or --data-root DIR / --data-config FILE.json). '
        f'Without any download, train on dataset.SyntheticMattingDataset instead.')


def resolve(name, split, table=None):
    """Folders of data set `name`, split 'train' or 'valid', checked to exist.

    Returns {'fgr': path, 'pha': path} for matting data sets and a path for 'backgrounds'.
    `table` comes from load_data_path (default: load_data_path() with no overrides).
    Raises DataPathError naming the entry (e.g. DATA_PATH['videomatte240k']['train']['pha'])
    and how to fix it.
    """
    if table is None:
        table = load_data_path()
    if name not in table:
        raise DataPathError(f'no data set {name!r} in DATA_PATH; known: {", ".join(sorted(table))} '
                            f'(add one with --data-path {name}.{split}.fgr=PATH and .pha=PATH)')
    if split not in table[name]:
        raise DataPathError(f'{_entry_name(name)} has no split {split!r}; it has: {", ".join(table[name])}')
    entry = table[name][split]
    if isinstance(entry, str):
        if not os.path.isdir(entry):
            raise _missing((name, split), entry)
        return entry
    for kind in KINDS:
        if kind not in entry:
            raise DataPathError(f'{_entry_name(name, split)} has no {kind!r} folder; '
                                f'add it with --data-path {name}.{split}.{kind}=PATH')
        if not os.path.isdir(entry[kind]):
            raise _missing((name, split, kind), entry[kind])
    return dict(entry)


def add_data_path_arguments(parser):
    """Add --data-root, --data-config and repeatable --data-path KEY=PATH to an argparse parser."""
    group = parser.add_argument_group('data paths')
    group.add_argument('--data-root', default=None,
                       help=f'folder the relative DATA_PATH entries are under (default: {DATA_ROOT})')
    group.add_argument('--data-config', default=None,
                       help='JSON file with {"data_root": ..., "data_path": {...}} overriding the table')
    group.add_argument('--data-path', action='append', default=[], metavar='NAME.SPLIT.KIND=PATH',
                       help='override one entry, e.g. videomatte240k.train.pha=/data/pha or '
                            'backgrounds.train=/data/bg (repeatable)')
    return parser


def data_path_from_args(args):
    """The effective table for parsed arguments from add_data_path_arguments."""
    return load_data_path(config=args.data_config, data_root=args.data_root, overrides=args.data_path)
