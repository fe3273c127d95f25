"""Evaluation reports: the mean of each metric, a table for the terminal, CSV and JSON files."""
import csv
import io
import json
import math
import os

import numpy as np

from utils.evaluation.metrics import METRIC_NAMES
from utils.image_io import atomic_write_bytes

def summarize(rows):
    """Mean of each metric over the per-image rows (FG-MSE over the images that have it)."""
    summary = {}
    for metric in METRIC_NAMES:
        values = [row[metric] for row in rows if not math.isnan(row[metric])]
        summary[metric] = float(np.mean(values)) if values else None
    return summary


def format_table(title, summary, count, reference=None):
    """The printed result table (MSE and FG-MSE in units of 1e-3, as in the paper)."""
    formats = {'SAD': '{:.2f}', 'MSE': '{:.2f}', 'Grad': '{:.0f}', 'Conn': '{:.0f}', 'FG-MSE': '{:.2f}',
               'SAD-image': '{:.2f}'}
    headers = ['SAD', 'MSE(1e-3)', 'Grad', 'Conn', 'FG-MSE(1e-3)', 'SAD(image)']
    label_width = max(len(title), 34)
    lines = [f'{title:<{label_width}}' + ''.join(f'{h:>14}' for h in headers)]

    def row(label, values):
        cells = [('-' if values.get(m) is None else formats[m].format(values[m])) for m in METRIC_NAMES]
        return f'{label:<{label_width}}' + ''.join(f'{c:>14}' for c in cells)

    lines.append(row(f'this run ({count} images)', summary))
    if reference is not None:
        lines.append(row('paper: MattingRefine ResNet-50', reference))
    return '\n'.join(lines)


def write_reports(rows, summary_record, log_dir, run_name):
    """Write ``<log_dir>/<run_name>.csv`` (one row per image) and ``<run_name>.json``
    (summary) atomically; return their paths."""
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ('' if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    csv_path = os.path.join(log_dir, run_name + '.csv')
    json_path = os.path.join(log_dir, run_name + '.json')
    atomic_write_bytes(csv_path, buffer.getvalue().encode('utf-8'))
    write_json(json_path, dict(summary_record, per_image_csv=csv_path))
    return csv_path, json_path


def write_json(path, obj):
    """Write `obj` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + '\n').encode('utf-8'))
