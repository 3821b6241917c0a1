"""Datasets (MNIST, CIFAR-10 from ``../shared/data``) and their partitions over clients."""

from __future__ import annotations

from edge_agent.data.datasets import (
    CACHE_DIR_ENV,
    DATA_DIR_ENV,
    DATASET_NAMES,
    NORMALISATION,
    NUM_CLASSES,
    ArrayDataset,
    DatasetError,
    load_dataset,
    load_raw,
    normalise,
    resolve_cache_dir,
    resolve_data_dir,
)
from edge_agent.data.partition import PartitionError, label_histogram, partition_indices

__all__ = [
    "CACHE_DIR_ENV",
    "DATASET_NAMES",
    "DATA_DIR_ENV",
    "NORMALISATION",
    "NUM_CLASSES",
    "ArrayDataset",
    "DatasetError",
    "PartitionError",
    "label_histogram",
    "load_dataset",
    "load_raw",
    "normalise",
    "partition_indices",
    "resolve_cache_dir",
    "resolve_data_dir",
]
