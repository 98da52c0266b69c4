"""Evaluation: COCO / CrowdPose keypoint AP, results files, the evaluation loop, the decoding ceiling.

    from litepose.evaluation import evaluate
    result = evaluate(cfg, model, limit=100)          # or image_ids=[...]; model: PyTorch, an export, an estimator
    result.ap, result.metrics, result.ms_per_image    # AP, the release's columns, timings

Results files alone: ``evaluate_keypoints(gt_file_or_dict, results, 'coco' | 'crowdpose')``.
"""

from .keypoint_eval import (COCO_COLUMNS, CROWD_INDEX_SPLIT, CROWDPOSE_COLUMNS, PROTOCOLS, evaluate_keypoints,
                            load_ground_truth, metrics_table, protocol_for_dataset)
from .results import check_results, image_results, load_results, write_results
from .runner import EvalResult, evaluate, export_input_size, pipeline_for, select_image_ids, summary_lines, write_outputs

__all__ = [
    "COCO_COLUMNS",
    "CROWDPOSE_COLUMNS",
    "CROWD_INDEX_SPLIT",
    "EvalResult",
    "PROTOCOLS",
    "check_results",
    "evaluate",
    "evaluate_keypoints",
    "export_input_size",
    "image_results",
    "load_ground_truth",
    "load_results",
    "metrics_table",
    "pipeline_for",
    "protocol_for_dataset",
    "select_image_ids",
    "summary_lines",
    "write_outputs",
    "write_results",
]
