"""The paper's evaluation protocol (eval.py's library).

samples: ground-truth layouts; composites: the fixed test composites; metrics and trimap: the
paper's metrics (MATLAB benchmark.m); protocol: running a network through an engine, or scoring predictions;
report: tables, CSV and JSON; baseline: a difference-key reference method.
"""
from utils.image_io import ImageReadError

from .composites import (CompositeConfig, composites_key, fit_background, perturb_background,
                         prepare_composites, read_manifest, sample_rng)
from .protocol import ModelConfig, evaluate_model, evaluate_predictions, load_engine, run_model, score_sample
from .report import format_table, summarize, write_reports
from .samples import (EvaluationError, Sample, folder_samples, images_by_stem, match_names,
                      photomatte85_samples)

__all__ = ['EvaluationError', 'Sample', 'CompositeConfig', 'ModelConfig', 'ImageReadError',
           'photomatte85_samples', 'folder_samples', 'prepare_composites', 'read_manifest',
           'load_engine', 'run_model', 'score_sample', 'summarize', 'format_table',
           'write_reports', 'evaluate_model', 'evaluate_predictions', 'images_by_stem', 'match_names',
           'fit_background', 'perturb_background', 'sample_rng', 'composites_key']
