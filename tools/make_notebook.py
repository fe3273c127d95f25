"""Build BackgroundMattingV2.ipynb (the AI Studio notebook) from the cells below.

    python tools/make_notebook.py

Kept as a script so that the notebook's source is reviewable as text; tests/test_notebook.py
executes the generated notebook headless at small sizes so that it cannot rot.
"""
import os
import re

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def where_to_get_it():
    """How to get the repository: README's `git clone URL` if it names one (nothing is guessed)."""
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        match = re.search(r'git clone (\S+)', f.read())
    if match:
        return f'get it with `git clone {match.group(1)}` and open this notebook from the clone'
    return ('upload or clone the repository this notebook came with into the project, and open '
            'the notebook from its root folder')

CELLS = [
    ('md', """# BackgroundMattingV2 in PaddlePaddle

Real-time high-resolution background matting (Lin et al., CVPR 2021): from a photo or video frame
`src` and a clean plate `bgr` of the same scene without the subject, predict the alpha matte `pha`
and the foreground `fgr`. This notebook installs the project, converts official weights, mattes
the sample images, evaluates, trains a few steps and exports a Paddle Inference model.

Run it from the repository root; the first cell finds the repository or says how to get it."""),
    ('code', f"""import glob, os
# The notebook runs from the repository root (where predict.py is); a copy unpacked or cloned
# into a subfolder (AI Studio's work folder) is found too.
if not os.path.isfile('predict.py'):
    found = sorted(glob.glob('*/predict.py') + glob.glob('*/*/predict.py'))
    if not found:
        raise SystemExit('predict.py not found: this notebook runs inside the BackgroundMattingV2 '
                         'PaddlePaddle repository; {where_to_get_it()}')
    os.chdir(os.path.dirname(os.path.abspath(found[0])))
print('repository:', os.getcwd())"""),
    ('code', """import glob, os, subprocess, sys
# Tests run this notebook at small sizes with outputs in a temporary folder.
SMALL = os.environ.get('BGMV2_NOTEBOOK_SMALL') == '1'
OUT = os.environ.get('BGMV2_NOTEBOOK_OUT', '.')
DEFAULT_WEIGHTS = 'weights/bgmv2_mobilenetv2_synthetic.pdparams'


def run(command):
    # Run a shell command, show what it printed, and stop here if it failed.
    print('$', command)
    result = subprocess.run(command, shell=True, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    print(result.stdout)
    if result.returncode:
        raise RuntimeError(f'exit status {result.returncode}: {command}')


print('Python', sys.version.split()[0], '| outputs under', os.path.abspath(OUT))"""),
    ('md', """## 1. Install

A PaddlePaddle that is already installed (AI Studio's GPU images have `paddlepaddle-gpu`) is
kept: then only the other requirements are installed. Otherwise `requirements.txt` installs the
CPU build (for a GPU elsewhere install the `paddlepaddle-gpu` wheel for your CUDA first; see
README, Environment). The GPU is used when this Paddle has CUDA and sees a GPU."""),
    ('code', """import utils  # first: quiets third-party import-time warnings
try:
    import paddle
except ImportError:
    paddle = None
if not SMALL:
    if paddle is None:
        !pip install -q -r requirements.txt
    else:
        !grep -v '^paddlepaddle' requirements.txt | pip install -q -r /dev/stdin
    import paddle
paddle.utils.run_check()
DEVICE = 'gpu' if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() else 'cpu'
print('device:', DEVICE)"""),
    ('md', """## 2. Convert the official weights (optional)

Download `pytorch_mobilenetv2.pth` (or resnet50 / resnet101) from the official repository's
model link and put it in the repository root. The converter needs no torch."""),
    ('code', """OFFICIAL = os.environ.get('BGMV2_NOTEBOOK_OFFICIAL', 'pytorch_mobilenetv2.pth')
CONVERTED = os.path.join(OUT, 'checkpoint', 'official_converted.pdparams')
if os.path.exists(OFFICIAL):
    run(f'python -m utils.convert_weights {OFFICIAL} {CONVERTED}')
else:
    print(f'{OFFICIAL} not found: skipping conversion; the default checkpoint is used below')"""),
    ('md', """## 3. Matte the samples

`predict.py` with no inputs mattes the sample pairs in `dataset/samples` with the default
checkpoint (trained by this project, see README section 2) and writes `pha`, `fgr`, `com` and `new`
(composite on a green backdrop) to `./image`."""),
    ('code', """WEIGHTS = os.environ.get('BGMV2_NOTEBOOK_WEIGHTS', DEFAULT_WEIGHTS)
PRED_DIR = os.path.join(OUT, 'image')
size = '--resize 320 180' if SMALL else ''
run(f'python predict.py --weights {WEIGHTS} --output-dir {PRED_DIR} --overwrite --device {DEVICE} {size}')"""),
    ('code', """import matplotlib.pyplot as plt
from utils.image_io import read_image

names = sorted(os.path.splitext(n)[0] for n in os.listdir('dataset/samples/src'))
fig, axes = plt.subplots(len(names), 3, figsize=(12, 2.6 * len(names)))
for row, name in zip(axes, names):
    src = glob.glob(f'dataset/samples/src/{name}.*')[0]
    for ax, (title, path) in zip(row, [('src', src), ('pha', f'{PRED_DIR}/pha/{name}.png'),
                                       ('new', f'{PRED_DIR}/new/{name}.png')]):
        ax.imshow(read_image(path), cmap='gray')
        ax.set_title(f'{name}: {title}')
        ax.axis('off')
plt.tight_layout()
plt.show()"""),
    ('md', """## 4. Evaluate

`eval.py` implements the paper's metrics (SAD, MSE, Grad, Conn, FG-MSE, as the official MATLAB
code) and protocol (fixed composites with a perturbed plate). Without PhotoMatte85 at hand, we
evaluate on a held-out synthetic set written by `dataset.synthetic.write_synthetic_dataset`."""),
    ('code', """from dataset.synthetic import write_synthetic_dataset
HOLDOUT = os.path.join(OUT, 'data', 'synthetic_holdout')
n, hw = (2, (128, 192)) if SMALL else (10, (720, 1280))
write_synthetic_dataset(HOLDOUT, n, size=hw, seed=2024)
run(f'python eval.py --gt-dir {HOLDOUT} --bgr-dir {HOLDOUT}/bgr --weights {WEIGHTS} '
    f'--log-dir {OUT}/log --cache-dir {OUT}/log/eval_cache --run-name notebook --no-progress '
    f'--device {DEVICE}')"""),
    ('md', """## 5. Train a few steps

`train.py` trains the base stage (MattingBase) or the refine stage (MattingRefine) with the
paper's losses and learning rates; `DATASET=synthetic sh run.sh` chains all three stages on
procedural data. Here: a few steps of the base stage on synthetic data, with VisualDL logs."""),
    ('code', """from utils.training.checkpoint import load_checkpoint
steps, batch = (2 if SMALL else 20), 2
# one epoch of steps * batch synthetic samples: exactly `steps` steps
run(f'python train.py --stage base --dataset-name synthetic --model-backbone mobilenetv2 '
    f'--model-name notebook-demo --epoch-end 1 --max-steps {steps} --batch-size {batch} '
    f'--sample-size 128 --crop-size 64 128 --synthetic-length {steps * batch} --valid-samples 2 '
    f'--num-workers 0 --device {DEVICE} --no-progress --log-train-loss-interval 1 '
    f'--checkpoint-dir {OUT}/checkpoint --log-dir {OUT}/log')
trained = load_checkpoint(os.path.join(OUT, 'checkpoint', 'notebook-demo'))['meta']['step']
assert trained == steps, (trained, steps)
print(f'trained {trained} steps:', sorted(os.listdir(os.path.join(OUT, 'checkpoint', 'notebook-demo'))))"""),
    ('md', """## 6. Export for deployment

`python -m utils.deploy.export` writes a Paddle Inference model (inputs `src`, `bgr` of any size, the
refine options baked in); `predict.py --inference-model DIR` runs it with Paddle Inference
(oneDNN on the CPU)."""),
    ('code', """EXPORT = os.path.join(OUT, 'export', 'mobilenetv2')
EXPORTED_PRED = os.path.join(OUT, 'image', 'exported')  # image/ is git-ignored
run(f'python -m utils.deploy.export {WEIGHTS} {EXPORT} --device {DEVICE}')
run(f'python predict.py --inference-model {EXPORT} --output-dir {EXPORTED_PRED} --overwrite '
    f'--device {DEVICE} {size}')
print(sorted(os.listdir(EXPORTED_PRED)))"""),
]


def build():
    cells = [new_markdown_cell(text) if kind == 'md' else new_code_cell(text) for kind, text in CELLS]
    for number, cell in enumerate(cells):
        cell.id = f'cell-{number}'  # stable ids: regenerating changes only what changed
    notebook = new_notebook(cells=cells, metadata={
        'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
        'language_info': {'name': 'python'}})
    path = os.path.join(ROOT, 'BackgroundMattingV2.ipynb')
    nbformat.write(notebook, path)
    return path


if __name__ == '__main__':
    print(build())
