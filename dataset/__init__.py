"""Datasets, augmentations, data paths and synthetic data for BackgroundMattingV2 training.

    from dataset import matting_dataset, SyntheticMattingDataset, augmentation as A

``matting_dataset('videomatte240k', 'train')`` reproduces the official training data
pipeline from the folders of the data-path table (``dataset.data_path``);
``SyntheticMattingDataset`` generates comparable samples with no download;
``augmentation.augment_batch`` is the per-step batch augmentation of the training loop.
"""
import utils.library_logging  # noqa: F401  first: quiets third-party import-time noise
from . import augmentation
from .data_path import DATA_PATH, DataPathError, load_data_path, resolve, add_data_path_arguments, \
    data_path_from_args
from .datasets import SeededDataset, ImagesDataset, VideoDataset, ZipDataset, SampleDataset, matting_dataset, \
    split_rgba_folder
from .synthetic import SyntheticMattingDataset, synthesize, make_sample_pair, write_synthetic_dataset

__all__ = ['augmentation', 'DATA_PATH', 'DataPathError', 'load_data_path', 'resolve', 'add_data_path_arguments',
           'data_path_from_args', 'SeededDataset', 'ImagesDataset', 'VideoDataset', 'ZipDataset', 'SampleDataset',
           'matting_dataset', 'split_rgba_folder', 'SyntheticMattingDataset', 'synthesize', 'make_sample_pair',
           'write_synthetic_dataset']
