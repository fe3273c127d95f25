"""Plot the loss curves of chained training stages from their VisualDL logs.

    python -m utils.training.plot OUT.png log/stage1-name log/stage2-name log/stage3-name

Each folder is one stage (one --model-name); the stages are drawn one after another on a
common step axis (each stage's steps shifted by the steps of the stages before it), with the
training loss (mean per log interval) and, where logged, the validation loss. Needs matplotlib.
"""
import argparse
import glob
import os
import sys

__all__ = ['read_scalars', 'plot_stages', 'main']


def read_scalars(log_dir, tag):
    """[(step, value)] of scalar `tag` in every VisualDL file of `log_dir`, sorted by step.

    A resumed run writes a new file into the same folder; for a step logged twice the value
    of the newer file wins.
    """
    from visualdl import LogReader
    values = {}
    for path in sorted(glob.glob(os.path.join(log_dir, 'vdlrecords.*')), key=os.path.getmtime):
        reader = LogReader(file_path=path)
        if tag in reader.get_tags().get('scalar', []):
            for record in reader.get_data('scalar', tag):
                values[int(record.id)] = float(record.value)
    return sorted(values.items())


def plot_stages(out_path, log_dirs, labels=None):
    """Draw train/loss and valid/loss of the stages in `log_dirs` into `out_path` (PNG).

    Returns {label: (first train loss, last train loss)} for a text summary.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    labels = labels or [os.path.basename(os.path.normpath(d)) for d in log_dirs]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    offset = 0
    summary = {}
    for k, (log_dir, label) in enumerate(zip(log_dirs, labels)):
        train = read_scalars(log_dir, 'train/loss')
        valid = read_scalars(log_dir, 'valid/loss')
        if not train:
            raise ValueError(f'{log_dir}: no train/loss scalars (is it a VisualDL log folder of train.py?)')
        # Each stage counts its steps from 0: shift it to start where the previous one ended.
        shift = offset
        color = f'C{k}'
        ax.plot([s + shift for s, _ in train], [v for _, v in train], color=color, label=f'{label} (train)')
        if valid:
            ax.plot([s + shift for s, _ in valid], [v for _, v in valid], 'o--', color=color, markersize=4,
                    label=f'{label} (valid)')
        if k:
            ax.axvline(offset, color='grey', linestyle=':', linewidth=1)
        offset = train[-1][0] + shift
        summary[label] = (train[0][1], train[-1][1])
    ax.set_xlabel('step (stages chained)')
    # The refine loss adds three backbone-resolution terms to the base loss's four: compare
    # curves within a stage, not across the base/refine boundary.
    ax.set_ylabel('loss (base: 4 terms, refine: 7 terms)')
    ax.set_title('BackgroundMattingV2 training loss per stage')
    ax.grid(alpha=0.3)
    # Below the axes: inside, it would hide the first (highest) losses.
    ax.legend(fontsize=8, loc='upper center', bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description='Plot chained training stages from VisualDL logs.')
    parser.add_argument('out', help='output PNG')
    parser.add_argument('log_dirs', nargs='+', help='log/<model-name> folders, in stage order')
    args = parser.parse_args(argv)
    try:
        summary = plot_stages(args.out, args.log_dirs)
    except ImportError as e:
        print(f'error: plotting needs matplotlib ({e}); pip install matplotlib', file=sys.stderr)
        return 2
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for label, (first, last) in summary.items():
        print(f'{label}: train loss {first:.4f} -> {last:.4f}')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
