"""The BackgroundMattingV2 training loop: base stage (MattingBase) and refine stage (MattingRefine).

This follows the official train_base.py / train_refine.py:

* Adam with one learning rate per part of the network (`STAGES`): base: backbone 1e-4,
  ASPP 5e-4, decoder 5e-4; refine: backbone 5e-5, ASPP 5e-5, decoder 1e-4, refiner 3e-4;
* per step: one random crop size for the whole batch (base 256-512 px, refine 1024-2048 px),
  a shadow cast on the source's background, noise on source and plate, colour jitter and a
  small affine warp of the plate (`dataset.batches.BatchAugment`);
* the official losses (`utils.training.losses`);
* mixed precision (paddle.amp) on GPU; data parallel training with `paddle.DataParallel`
  (SyncBatchNorm on GPU) when started by `python -m paddle.distributed.launch`.

Additions for a reproducible, interruptible run: full checkpoints (model, optimizer, loss
scaler, progress, RNG states; `utils.training.checkpoint`) with `--resume`; SIGINT/SIGTERM stop
after the current step and save; every batch is a pure function of (seed, epoch, batch), so
2 steps + resume + 2 steps gives the weights of 4 steps; validation on a fixed, seeded
subset; VisualDL logs under log/<model-name>/ and a console line per log interval with
avg_reader_cost, avg_batch_cost and ips, as Paddle's reproductions print.

`train(args)` takes the namespace parsed by train.py (see `train.build_parser`).
"""
import collections
import math
import os
import random
import signal
import sys
import threading
import time

import numpy as np
import paddle
import paddle.distributed as dist

from model import MattingBase, MattingRefine
from model.weights import (CheckpointError, convert_deeplabv3_state_dict, load_matched_state_dict, load_weights,
                           read_torch_checkpoint)
from utils.training.checkpoint import (checkpoint_name, latest_checkpoint, load_checkpoint, prune_checkpoints,
                                    resolve_checkpoint_path, restore_optimizer_state, save_checkpoint,
                                    set_rng_state)
from dataset.batches import GENERATED, REAL, BatchAugment, MattingBatches, build_datasets
from utils.training.losses import loss_terms_base, loss_terms_refine

__all__ = ['STAGES', 'TrainingError', 'TrainResult', 'fill_stage_defaults', 'new_model', 'run_datasets',
           'run_augment', 'build_optimizer',
           'forward_losses', 'StopRequest', 'make_grid', 'validate', 'Trainer', 'train']

# Per-stage settings of the official scripts. 'lrs' are Adam learning rates per model part;
# the other entries are defaults of the command-line options of the same name.
STAGES = {
    'base': {
        'lrs': collections.OrderedDict([('backbone', 1e-4), ('aspp', 5e-4), ('decoder', 5e-4)]),
        'batch_size': 8, 'sample_size': 512, 'crop_size': (256, 512),
        'log_train_images_interval': 2000, 'log_valid_interval': 5000, 'checkpoint_interval': 5000,
    },
    'refine': {
        'lrs': collections.OrderedDict([('backbone', 5e-5), ('aspp', 5e-5), ('decoder', 1e-4),
                                        ('refiner', 3e-4)]),
        'batch_size': 4, 'sample_size': 2048, 'crop_size': (1024, 2048),
        'log_train_images_interval': 1000, 'log_valid_interval': 2000, 'checkpoint_interval': 2000,
    },
}

TrainResult = collections.namedtuple('TrainResult', ['step', 'epoch', 'stopped_by', 'checkpoint', 'losses'])
TrainResult.__doc__ = """What `train` did.

step: optimizer steps completed (counting those before a resume); epoch: the epoch the run
ended in; stopped_by: None (finished / --max-steps / --max-seconds) or the signal number that
stopped it;
checkpoint: the last checkpoint written (or None); losses: [(step, mean training loss over
the log interval)] of this run.
"""


class TrainingError(ValueError):
    """A bad training configuration (the message says which option and how to fix it)."""


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

def fill_stage_defaults(args):
    """Replace the options left at None with the stage's official defaults (in place); returns args."""
    defaults = STAGES[args.stage]
    for key in ('batch_size', 'sample_size', 'crop_size', 'log_train_images_interval',
                'log_valid_interval', 'checkpoint_interval'):
        if getattr(args, key, None) is None:
            setattr(args, key, defaults[key])
    size = [args.sample_size] if isinstance(args.sample_size, int) else list(args.sample_size)
    if len(size) not in (1, 2):
        raise TrainingError(f'--sample-size takes H or H W, got {size}')
    args.sample_size = (int(size[0]), int(size[-1]))
    args.crop_size = tuple(int(s) for s in args.crop_size) if args.crop_size else None
    if args.num_workers is None:
        args.num_workers = min(16, os.cpu_count() or 1)
    return args


def _check_args(args, world_size):
    if args.epoch_end <= args.epoch_start:
        raise TrainingError(f'--epoch-end ({args.epoch_end}) must be greater than --epoch-start '
                            f'({args.epoch_start})')
    if args.max_seconds < 0:
        raise TrainingError(f'--max-seconds must be 0 (no limit) or positive, got {args.max_seconds:g}')
    for option in ('loss_unknown_weight', 'loss_foreground_weight', 'loss_error_weight'):
        if getattr(args, option) < 0:
            raise TrainingError(f'--{option.replace("_", "-")} must be 0 (off) or positive, '
                                f'got {getattr(args, option):g}')
    if not 0 <= args.shadow_prob <= 1:
        raise TrainingError(f'--shadow-prob is a probability: give a value from 0 to 1, got {args.shadow_prob:g}')
    if args.real_kinds:
        if args.dataset_name != REAL:
            raise TrainingError(f'--real-kinds sets the foreground mix of --dataset-name {REAL}, '
                                f'not of {args.dataset_name}')
        from dataset.real import kind_weights
        try:
            kind_weights(args.real_kinds)
        except ValueError as e:
            raise TrainingError(f'--real-kinds: {e}') from None
    if args.batch_size % world_size:
        raise TrainingError(f'--batch-size {args.batch_size} is the total over {world_size} processes '
                            f'and must be divisible by it')
    if args.crop_size is not None and (len(args.crop_size) != 2 or not 4 <= args.crop_size[0] < args.crop_size[1]):
        raise TrainingError(f'--crop-size takes MIN MAX with 4 <= MIN < MAX, got {args.crop_size}')
    if args.stage == 'refine':
        if any(s % 4 for s in args.sample_size):
            raise TrainingError(f'--sample-size {args.sample_size} must be divisible by 4 for the refine '
                                f'stage (MattingRefine works on a 4x4 patch grid)')
    for key in ('log_train_loss_interval', 'log_train_images_interval', 'log_valid_interval',
                'checkpoint_interval'):
        if getattr(args, key) < 1:
            raise TrainingError(f'--{key.replace("_", "-")} must be at least 1')
    if args.amp and args.device != 'gpu':
        raise TrainingError('--amp needs --device gpu (Paddle mixed precision is for GPUs)')


# ---------------------------------------------------------------------------------------------
# Model and optimizer
# ---------------------------------------------------------------------------------------------

def new_model(args):
    """MattingBase(backbone) for the base stage, MattingRefine(...) with the refine options otherwise."""
    if args.stage == 'base':
        return MattingBase(args.model_backbone)
    return MattingRefine(args.model_backbone, args.model_backbone_scale, args.model_refine_mode,
                         args.model_refine_sample_pixels, args.model_refine_threshold,
                         args.model_refine_kernel_size)


def run_datasets(args, seed=None, synthetic_length=None):
    """(train, valid) datasets of a run's options: train.py's namespace, or the options a
    checkpoint saved (``meta['args']``). `seed` and `synthetic_length` replace the run's own."""
    table = None
    if args.dataset_name not in GENERATED:
        from dataset.data_path import load_data_path
        table = load_data_path(config=args.data_config, data_root=args.data_root, overrides=args.data_path)
    return build_datasets(args.dataset_name, tuple(args.sample_size), args.valid_samples,
                          seed=args.seed if seed is None else seed, table=table,
                          synthetic_length=synthetic_length or args.synthetic_length, data_root=args.data_root,
                          real_kinds=args.real_kinds)


def run_augment(args):
    """The per-step augmentation of a run's options (see `run_datasets`)."""
    return BatchAugment(tuple(args.crop_size) if args.crop_size else None, extra=args.extra_augmentation,
                        plate_change=args.plate_change, shadow_prob=args.shadow_prob)


def build_optimizer(model, lrs):
    """Adam (torch defaults: betas 0.9/0.999, eps 1e-8, no weight decay) with one learning rate per part.

    Args:
        model: MattingBase / MattingRefine (unwrapped).
        lrs: {part name: learning rate}, parts being attributes of the model ('backbone',
            'aspp', 'decoder', 'refiner').
    In Paddle a parameter group's 'learning_rate' multiplies the optimizer's global rate, so
    the global rate is 1.0 and each group carries its absolute rate.
    """
    groups = [{'params': getattr(model, part).parameters(), 'learning_rate': float(lr)}
              for part, lr in lrs.items()]
    covered = sum(len(g['params']) for g in groups)
    if covered != len(model.parameters()):
        raise TrainingError(f'learning-rate groups {list(lrs)} cover {covered} of '
                            f'{len(model.parameters())} parameters')
    return paddle.optimizer.Adam(learning_rate=1.0, beta1=0.9, beta2=0.999, epsilon=1e-8, parameters=groups)


def forward_losses(model, stage, src, bgr, true_pha, true_fgr, unknown_weight=0.0, foreground_weight=0.0,
                   error_weight=0.0):
    """Run the model and the stage's loss.

    Args:
        model: the network (possibly DataParallel-wrapped); stage: 'base' or 'refine'.
        src, bgr: (B, 3, H, W); true_pha (B, 1, H, W); true_fgr (B, 3, H, W).
        unknown_weight, foreground_weight, error_weight: --loss-unknown-weight,
            --loss-foreground-weight, --loss-error-weight (utils.training.losses).
    Returns:
        (loss scalar tensor, {term name: scalar tensor}, {'pha', 'fgr', 'err'[, 'ref']: outputs})
        with pha/fgr at (H, W); err (and ref) at the coarse resolution in the refine stage.
    """
    if stage == 'base':
        pha, fgr, err = model(src, bgr)[:3]
        terms = loss_terms_base(pha, fgr, err, true_pha, true_fgr, unknown_weight, foreground_weight, error_weight)
        outputs = {'pha': pha, 'fgr': fgr, 'err': err}
    else:
        pha, fgr, pha_sm, fgr_sm, err_sm, ref_sm = model(src, bgr)
        terms = loss_terms_refine(pha, fgr, pha_sm, fgr_sm, err_sm, true_pha, true_fgr, unknown_weight,
                                  foreground_weight, error_weight)
        outputs = {'pha': pha, 'fgr': fgr, 'err': err_sm, 'ref': ref_sm}
    return paddle.add_n(list(terms.values())), terms, outputs


def _load_initial_weights(model, args, log):
    """--model-last-checkpoint (any weights, matched by name and shape) or --model-pretrain-initialization."""
    if args.model_last_checkpoint:
        path = resolve_checkpoint_path(args.model_last_checkpoint)
        state, config = load_weights(path)
        if config['backbone'] != args.model_backbone:
            raise CheckpointError(f'{path}: holds {config["backbone"]} weights, but --model-backbone is '
                                  f'{args.model_backbone}')
        kernel = config['refine_kernel_size']
        if args.stage == 'refine' and kernel not in (None, args.model_refine_kernel_size):
            log(f'note: {path} has refiner kernel size {kernel}; the refiner starts from its '
                f'initialisation (--model-refine-kernel-size {args.model_refine_kernel_size})')
        matched, total = load_matched_state_dict(model, state, verbose=False)
        log(f'Loaded {path}: {matched}/{total} entries matched')
        return path
    if args.model_pretrain_initialization:
        path = args.model_pretrain_initialization
        if path.endswith(('.pth', '.pt')):
            state = convert_deeplabv3_state_dict(read_torch_checkpoint(path), args.model_backbone)
        else:
            if not os.path.isfile(path):
                raise CheckpointError(f'{path}: no such file; check --model-pretrain-initialization')
            state = paddle.load(path, return_numpy=True)
        matched, total = load_matched_state_dict(model, state, verbose=False)
        if matched == 0:
            raise CheckpointError(f'{path}: no entry matches MattingBase({args.model_backbone}); is it '
                                  f'DeepLabV3 {args.model_backbone} weights?')
        log(f'Initialised from {path}: {matched}/{total} entries matched')
        return path
    return None


# ---------------------------------------------------------------------------------------------
# Signals, logging helpers
# ---------------------------------------------------------------------------------------------

class StopRequest:
    """Context manager turning SIGINT/SIGTERM into a request to stop after the current step.

    The loop polls `requested`; the first signal only sets it (so the step in progress ends
    and a checkpoint is written), a second one raises KeyboardInterrupt at once. Handlers are
    only installed in the main thread (Python's rule) and restored on exit.
    """

    def __init__(self, signals=(signal.SIGINT, signal.SIGTERM)):
        self.signals = signals
        self.signum = None
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt(f'second {signal.Signals(signum).name}: stopping without a checkpoint')
        self.signum = signum
        print(f'\n{signal.Signals(signum).name} received: saving a checkpoint after the current step '
              f'(send it again to stop at once, without saving)', file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False


def make_grid(images, nrow=5, padding=2):
    """Tile a batch into one image for VisualDL: (N, C, H, W) float in [0, 1] -> (H', W', 3) uint8.

    One- and three-channel batches are supported (mattes are shown in grey).
    """
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    n, _, h, w = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, 3), np.float32)
    for k in range(n):
        y, x = padding + (k // cols) * (h + padding), padding + (k % cols) * (w + padding)
        grid[y:y + h, x:x + w] = images[k].transpose(1, 2, 0)
    return (grid * 255.0 + 0.5).astype(np.uint8)


class _NullWriter:
    """Stands in for VisualDL's LogWriter on ranks other than 0."""

    def add_scalar(self, *args, **kwargs):
        pass

    def add_image(self, *args, **kwargs):
        pass

    def close(self):
        pass


class _Meter:
    """Running averages of the reader cost, batch cost and losses over one log interval."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.reader = self.batch = 0.0
        self.samples = self.count = 0
        self.terms = collections.defaultdict(float)

    def update(self, reader_cost, batch_cost, samples, terms):
        self.reader += reader_cost
        self.batch += batch_cost
        self.samples += samples
        self.count += 1
        for k, v in terms.items():
            self.terms[k] += v

    def mean(self, key):
        return self.terms[key] / max(1, self.count)


def _worker_init(worker_id):
    """DataLoader workers leave SIGINT/SIGTERM to the training process, which stops after the step
    and saves.

    Ctrl+C, `timeout` and job schedulers signal the whole process group; a worker killed that way
    makes Paddle raise in the training process before it can save. So workers leave the group
    (they still end with the training process: Paddle's workers watch their parent, and the
    DataLoader terminates them on shutdown) and ignore SIGINT from the terminal.
    """
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _format_time(seconds):
    seconds = int(max(0, seconds))
    return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def _to_numpy(x):
    return x.astype('float32').numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


def _log_images(writer, prefix, step, src, bgr, outputs, true_pha):
    """Image grids of the predictions (pha, fgr, composite, err[, ref]) and inputs."""
    pha, fgr = _to_numpy(outputs['pha']), _to_numpy(outputs['fgr'])
    grids = {'pha': pha, 'fgr': fgr, 'com': fgr * pha, 'err': _to_numpy(outputs['err']),
             'src': _to_numpy(src), 'bgr': _to_numpy(bgr), 'true_pha': _to_numpy(true_pha)}
    if 'ref' in outputs:
        grids['ref'] = _to_numpy(outputs['ref'])
    for name, batch in grids.items():
        writer.add_image(f'{prefix}/{name}', make_grid(batch), step)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def validate(model, stage, loader, amp=False, writer=None, step=0):
    """Loss and matte errors of `model` on a validation loader; restores train mode.

    Args:
        model: unwrapped network; stage: 'base' or 'refine'.
        loader: yields (src, bgr, pha, fgr) batches (MattingBatches without augmentation).
        writer, step: if given, the first batch's predictions are logged as 'valid/*' images.
    Returns:
        {'loss': mean loss per sample, 'SAD': mean over images of sum|pha - pha*| / 1000,
         'MSE': mean over images of mean((pha - pha*)^2) * 1000}, pha being the full-resolution
        alpha, both errors over the whole image (no trimap).
    """
    model.eval()
    total = collections.defaultdict(float)
    count = 0
    try:
        with paddle.no_grad():
            for i, (src, bgr, true_pha, true_fgr) in enumerate(loader):
                with paddle.amp.auto_cast(enable=amp):
                    loss, _, outputs = forward_losses(model, stage, src, bgr, true_pha, true_fgr)
                n = src.shape[0]
                diff = _to_numpy(outputs['pha']) - _to_numpy(true_pha)
                total['loss'] += float(loss) * n
                total['SAD'] += float(np.abs(diff).sum(axis=(1, 2, 3)).sum()) / 1000.0
                total['MSE'] += float((diff ** 2).mean(axis=(1, 2, 3)).sum()) * 1000.0
                count += n
                if i == 0 and writer is not None:
                    _log_images(writer, 'valid', step, src, bgr, outputs, true_pha)
    finally:
        model.train()
    return {k: v / max(1, count) for k, v in total.items()}


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def _checkpoint_meta(args, step, epoch, batch, batches_per_epoch, lrs, world_size):
    plain = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
             if isinstance(v, (str, int, float, bool, tuple, list, type(None)))}
    return {'step': step, 'epoch': epoch, 'batch': batch, 'batches_per_epoch': batches_per_epoch,
            'stage': args.stage, 'backbone': args.model_backbone, 'lrs': dict(lrs),
            'world_size': world_size, 'args': plain}


def _any_rank(flags, world_size):
    """For each flag, True on every rank if it is True on any rank (so that all ranks stop at
    the same step): a tuple of bools in, the same length out."""
    if world_size == 1:
        return tuple(bool(f) for f in flags)
    t = paddle.to_tensor([1 if f else 0 for f in flags], dtype='int32')
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in t.numpy())


def _setup_device(args, world_size):
    if args.device == 'gpu':
        if not paddle.is_compiled_with_cuda():
            raise TrainingError('--device gpu, but this Paddle build has no CUDA; use --device cpu '
                                'or install paddlepaddle-gpu')
        device = f'gpu:{dist.ParallelEnv().device_id}' if world_size > 1 else 'gpu'
    else:
        device = 'cpu'
    paddle.set_device(device)
    if world_size > 1:
        dist.init_parallel_env()
    return device


def _seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


class Trainer:
    """One training run of one stage; `train(args)` is the entry point.

    Construction does everything that can fail on bad input (options, data folders,
    weights, checkpoints) before any step is taken; `run()` then trains from the current
    position (step, epoch, batch within the epoch) to --epoch-end, --max-steps or --max-seconds,
    or until SIGINT/SIGTERM, and returns a `TrainResult`.
    """

    def __init__(self, args):
        fill_stage_defaults(args)
        self.args = args
        self.world_size, self.rank = dist.get_world_size(), dist.get_rank()
        _check_args(args, self.world_size)
        self.is_main = self.rank == 0
        self.device = _setup_device(args, self.world_size)
        _seed_everything(args.seed)
        self.checkpoint_dir = os.path.join(args.checkpoint_dir, args.model_name)
        self._build_data()
        resume_state = self._build_model()
        self._build_optimizer(resume_state)
        self._set_position(resume_state)
        self.last_checkpoint = None
        self.losses = []

    def say(self, msg):
        """Print on rank 0 only; tqdm.write puts the line above an active progress bar."""
        if self.is_main:
            from tqdm import tqdm
            tqdm.write(msg)
            sys.stdout.flush()

    # -- setup ---------------------------------------------------------------------------------

    def _build_data(self):
        args = self.args
        # a missing data folder is reported here, before the model is built
        self.train_set, self.valid_set = run_datasets(args)
        per_rank = args.batch_size // self.world_size
        self.train_batches = MattingBatches(self.train_set, per_rank, seed=args.seed, shuffle=True,
                                            augment=run_augment(args), drop_last=True, rank=self.rank,
                                            world_size=self.world_size)
        self.steps_per_epoch = self.train_batches.batches_per_epoch
        if self.steps_per_epoch == 0:
            raise TrainingError(f'the training set has {len(self.train_set)} samples, fewer than one batch of '
                                f'{args.batch_size}; lower --batch-size')
        self.valid_batches = MattingBatches(self.valid_set, per_rank, shuffle=False, augment=None, drop_last=False)
        self.valid_batches.set_epoch(0)  # validation always sees the same samples

    def _build_model(self):
        """The model with its weights: from the latest checkpoint (--resume) or the start options.

        Returns the checkpoint dict when resuming, else None.
        """
        args = self.args
        self.model = new_model(args)
        resume_state = None
        if args.resume:
            path = latest_checkpoint(self.checkpoint_dir)
            if path is None:
                self.say(f'--resume: no checkpoint in {self.checkpoint_dir} yet; starting a new run')
            else:
                resume_state = load_checkpoint(path)
                self._check_resumable(path, resume_state['meta'])
                missing, unexpected = self.model.set_state_dict(resume_state['model'])
                if missing or unexpected:
                    raise CheckpointError(f'{path}: does not fit the model (missing {missing[:3]}, '
                                          f'unexpected {unexpected[:3]})')
                self.say(f'Resuming from {path} (step {resume_state["meta"]["step"]})')
        if resume_state is None:
            _load_initial_weights(self.model, args, self.say)
        if self.world_size > 1 and args.device == 'gpu':
            # Before the optimizer is built, so that it holds the converted layers' parameters.
            # SyncBatchNorm has no CPU kernel in Paddle; on CPU each process keeps its own statistics.
            self.model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.net = self.model
        if self.world_size > 1:
            # The refiner gets no gradient in a step where no patch is selected.
            self.net = paddle.DataParallel(self.model, find_unused_parameters=args.stage == 'refine')
        return resume_state

    def _check_resumable(self, path, meta):
        args = self.args
        if meta.get('stage') != args.stage or meta.get('backbone') != args.model_backbone:
            raise CheckpointError(f'{path}: is a {meta.get("stage")} {meta.get("backbone")} checkpoint, '
                                  f'but this run is --stage {args.stage} --model-backbone '
                                  f'{args.model_backbone}; use another --model-name')
        saved_kernel = meta.get('args', {}).get('model_refine_kernel_size', args.model_refine_kernel_size)
        if args.stage == 'refine' and saved_kernel != args.model_refine_kernel_size:
            raise CheckpointError(f'{path}: was trained with --model-refine-kernel-size {saved_kernel}, '
                                  f'not {args.model_refine_kernel_size}')

    def _build_optimizer(self, resume_state):
        args = self.args
        self.lrs = collections.OrderedDict((part, lr * args.lr_scale)
                                           for part, lr in STAGES[args.stage]['lrs'].items())
        if resume_state is not None:
            self.lrs = collections.OrderedDict(resume_state['meta']['lrs'])  # the run's own rates
        self.optimizer = build_optimizer(self.model, self.lrs)
        self.amp = bool(args.amp)
        # torch's GradScaler defaults, as the official scripts use them.
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 16) if self.amp else None
        if resume_state is not None:
            restore_optimizer_state(self.optimizer, self.model, resume_state['optimizer'])
            if self.scaler is not None and resume_state.get('scaler'):
                self.scaler.load_state_dict(resume_state['scaler'])

    def _set_position(self, resume_state):
        """step (optimizer steps done), epoch and batch (next batch of that epoch)."""
        if resume_state is None:
            self.step, self.epoch, self.batch = self.args.epoch_start * self.steps_per_epoch, self.args.epoch_start, 0
            return
        meta = resume_state['meta']
        self.step, self.epoch, self.batch = int(meta['step']), int(meta['epoch']), int(meta['batch'])
        if meta.get('batches_per_epoch') not in (None, self.steps_per_epoch):
            self.say(f'note: the checkpoint had {meta["batches_per_epoch"]} batches per epoch, now there are '
                     f'{self.steps_per_epoch} (other data or batch size); continuing at batch {self.batch}')
        if self.batch >= self.steps_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        if resume_state.get('rng') is not None:
            set_rng_state(resume_state['rng'])  # last, so that nothing above consumes random numbers

    # -- one step, logging, validation, checkpoints ---------------------------------------------

    def _train_step(self, src, bgr, true_pha, true_fgr):
        """Forward, backward, update. Returns (loss value, {term: value}, outputs)."""
        with paddle.amp.auto_cast(enable=self.amp):
            loss, terms, outputs = forward_losses(self.net, self.args.stage, src, bgr, true_pha, true_fgr,
                                                  self.args.loss_unknown_weight,
                                                  self.args.loss_foreground_weight,
                                                  self.args.loss_error_weight)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)  # skips the update if the scaled gradients overflowed
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.clear_grad()
        value = float(loss)
        if not math.isfinite(value) and self.scaler is None:
            raise FloatingPointError(f'the loss is {value} at step {self.step}; lower the learning rates '
                                     f'(--lr-scale) or check the data')
        return value, {k: float(v) for k, v in terms.items()}, outputs

    def _log_losses(self, meter, writer, total_steps):
        mean_loss = meter.mean('loss')
        self.losses.append((self.step, mean_loss))
        for k in meter.terms:
            writer.add_scalar('train/loss' if k == 'loss' else f'train/loss_{k}', meter.mean(k), self.step)
        for part, lr in self.lrs.items():
            writer.add_scalar(f'lr/{part}', lr, self.step)
        avg_batch = meter.batch / meter.count
        self.say(f'[TRAIN] epoch: {self.epoch}, step: {self.step}, batch: {self.batch}/{self.steps_per_epoch}, '
                 f'loss: {mean_loss:.5f}, lr: {next(iter(self.lrs.values())):.2e}, '
                 f'avg_reader_cost: {meter.reader / meter.count:.5f} sec, '
                 f'avg_batch_cost: {avg_batch:.5f} sec, avg_samples: {meter.samples / meter.count:.1f}, '
                 f'ips: {meter.samples / max(meter.batch, 1e-9):.3f} samples/sec, '
                 f'eta: {_format_time((total_steps - self.step) * avg_batch)}')
        meter.reset()

    def _validate(self, writer):
        loader = paddle.io.DataLoader(self.valid_batches, batch_size=None,
                                      num_workers=min(self.args.num_workers, 2), worker_init_fn=_worker_init)
        scores = validate(self.model, self.args.stage, loader, amp=self.amp, writer=writer, step=self.step)
        for k, v in scores.items():
            writer.add_scalar(f'valid/{k}', v, self.step)
        self.say(f'[VALID] step: {self.step}, loss: {scores["loss"]:.5f}, SAD: {scores["SAD"]:.4f}, '
                 f'MSE(x1e3): {scores["MSE"]:.4f} ({len(self.valid_set)} samples)')

    def _save(self, filename):
        if not self.is_main:
            return
        meta = _checkpoint_meta(self.args, self.step, self.epoch, self.batch, self.steps_per_epoch, self.lrs,
                                self.world_size)
        self.last_checkpoint = save_checkpoint(self.checkpoint_dir, filename, self.model, self.optimizer, meta,
                                               self.scaler)
        prune_checkpoints(self.checkpoint_dir, self.args.keep_checkpoints)
        self.say(f'[TRAIN] saved {self.last_checkpoint}')

    # -- the loop ------------------------------------------------------------------------------

    def run(self):
        """Train to --epoch-end (or --max-steps, --max-seconds, a signal); returns a `TrainResult`."""
        args = self.args
        self.deadline = time.monotonic() + args.max_seconds if args.max_seconds else None
        kinds = f'kinds {args.real_kinds}, ' if args.real_kinds else ''
        region_losses = ''.join(f'{name} loss x{weight:g}, ' for name, weight in
                                (('unknown-region', args.loss_unknown_weight),
                                 ('foreground', args.loss_foreground_weight),
                                 ('extra error', args.loss_error_weight)) if weight)
        self.say(f'[TRAIN] stage {args.stage}, {type(self.model).__name__}({args.model_backbone}), data '
                 f'{args.dataset_name}: {len(self.train_set)} train / {len(self.valid_set)} valid samples of '
                 f'{args.sample_size[0]}x{args.sample_size[1]}, crop {args.crop_size}, plate change '
                 f'{args.plate_change}, shadows p={args.shadow_prob:g}, {kinds}{region_losses}batch {args.batch_size} ({self.world_size} process(es), {self.device}'
                 f'{", amp" if self.amp else ""}), '
                 f'{self.steps_per_epoch} steps/epoch, epochs {self.epoch}..{args.epoch_end - 1}, lrs '
                 + ', '.join(f'{k} {v:g}' for k, v in self.lrs.items()))
        stopped_by = None
        if self.epoch >= args.epoch_end:
            self.say(f'[TRAIN] already trained to the end of epoch {self.epoch - 1} (step {self.step}), '
                     f'--epoch-end {args.epoch_end}: nothing to do')
        elif args.max_steps and self.step >= args.max_steps:
            self.say(f'[TRAIN] already at step {self.step} >= --max-steps {args.max_steps}: nothing to do')
        else:
            writer = _NullWriter()
            if self.is_main:
                from visualdl import LogWriter
                os.makedirs(self.checkpoint_dir, exist_ok=True)
                writer = LogWriter(logdir=os.path.join(args.log_dir, args.model_name))
            self.model.train()
            try:
                with StopRequest() as stop:
                    while self.epoch < args.epoch_end:
                        finished = self._run_epoch(stop, writer)
                        if finished is not False:
                            stopped_by = finished
                            break
                        self.epoch, self.batch = self.epoch + 1, 0
            finally:
                writer.close()

        # Equal on every rank when data-parallel training kept the replicas in sync (BatchNorm
        # statistics are left out: without SyncBatchNorm, on CPU, each process has its own).
        checksum = float(sum(float(paddle.abs(p).astype('float64').sum()) for p in self.model.parameters()
                             if not p.stop_gradient))
        print(f'[TRAIN] rank {self.rank}: {self.step} steps done, trainable parameter checksum {checksum:.6f}',
              flush=True)
        if stopped_by:
            self.say(f'[TRAIN] stopped by {signal.Signals(stopped_by).name} at step {self.step}; '
                     f'continue with --resume')
        return TrainResult(self.step, self.epoch, stopped_by or None, self.last_checkpoint, self.losses)

    def _run_epoch(self, stop, writer):
        """Train the rest of the current epoch.

        Returns False when the epoch is complete and training goes on; otherwise it stopped:
        the signal number (SIGINT/SIGTERM) or None (--max-steps, --max-seconds).
        """
        from tqdm import tqdm
        args = self.args
        total_steps = args.epoch_end * self.steps_per_epoch
        if args.max_steps:
            total_steps = min(total_steps, args.max_steps)
        self.train_batches.set_epoch(self.epoch, start=self.batch)
        loader = paddle.io.DataLoader(self.train_batches, batch_size=None, num_workers=args.num_workers,
                                      worker_init_fn=_worker_init)
        batches = iter(loader)
        # disable=None: no bar when stderr is not a terminal (CI logs, files).
        bar = tqdm(total=self.steps_per_epoch, initial=self.batch, desc=f'epoch {self.epoch}', dynamic_ncols=True,
                   disable=True if (not self.is_main or args.no_progress) else None, leave=False)
        meter = _Meter()
        result = False
        try:
            while self.batch < self.steps_per_epoch:
                start = time.perf_counter()
                try:
                    src, bgr, true_pha, true_fgr = next(batches)
                except Exception:
                    if stop.requested:  # the workers got the same Ctrl+C and died: stop cleanly
                        self._save(checkpoint_name(self.epoch, self.step))
                        return stop.signum
                    raise
                reader_cost = time.perf_counter() - start
                loss, terms, outputs = self._train_step(src, bgr, true_pha, true_fgr)
                self.step += 1
                self.batch += 1
                bar.update(1)
                meter.update(reader_cost, time.perf_counter() - start, src.shape[0], dict(terms, loss=loss))

                if self.step % args.log_train_loss_interval == 0:
                    self._log_losses(meter, writer, total_steps)
                if self.is_main and self.step % args.log_train_images_interval == 0:
                    _log_images(writer, 'train', self.step, src, bgr, outputs, true_pha)
                del src, bgr, true_pha, true_fgr, outputs
                if self.is_main and self.step % args.log_valid_interval == 0:
                    self._validate(writer)

                # One reduction decides both: ranks may disagree about the clock by a step.
                out_of_time = self.deadline is not None and time.monotonic() >= self.deadline
                stopping, out_of_time = _any_rank((stop.requested, out_of_time), self.world_size)
                at_max = out_of_time or (bool(args.max_steps) and self.step >= args.max_steps)
                if self.batch == self.steps_per_epoch:
                    self._save(checkpoint_name(self.epoch))
                elif self.step % args.checkpoint_interval == 0 or stopping or at_max:
                    self._save(checkpoint_name(self.epoch, self.step))
                if stopping or at_max:
                    result = stop.signum if stopping else None
                    if out_of_time and not stopping:
                        self.say(f'[TRAIN] --max-seconds {args.max_seconds:g} reached at step {self.step}; '
                                 f'continue with --resume')
                    break
            if self.batch >= self.steps_per_epoch:
                # Let the iterator reach its end: it then stops its workers itself. Dropping it
                # early makes Paddle kill them, which it reports as an error at exit.
                next(batches, None)
        finally:
            bar.close()
        return result


def train(args):
    """Train one stage as configured by `args` (the namespace of train.py); returns a `TrainResult`.

    Raises TrainingError, CheckpointError or dataset.data_path.DataPathError (naming the
    DATA_PATH entry) for bad options, weights or data folders, before any step is taken.
    """
    return Trainer(args).run()
