"""Segmentation metrics (Dice, NSD, ReXGroundingCT finding metrics) and folder evaluation."""

from VoxTellCore.evaluation.metrics import (FindingResult, FindingScores, InstanceMatch, connected_instances,
                                            dice, finding_metrics, match_instances, score_finding,
                                            summarize_findings, surface_dice)

__all__ = ["FindingResult", "FindingScores", "InstanceMatch", "connected_instances", "dice", "finding_metrics",
           "match_instances", "score_finding", "summarize_findings", "surface_dice"]
