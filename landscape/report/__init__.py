"""`landscape report`: PNG figures, one self-contained HTML page and summary.json from stores.

Reads the stores with h5py and numpy only; matplotlib is imported here and nowhere else in
landscape (seaborn's "whitegrid" look is copied into style.py, not imported), and nothing here
imports torch, the trainer, the models or the evaluator.
"""

from landscape.report.build import build_report
from landscape.report.claims import evaluate_claim, evaluate_claims, lookup
from landscape.report.data import ReportData, load
from landscape.report.summary_json import SUMMARY_SCHEMA

__all__ = [
    "SUMMARY_SCHEMA",
    "ReportData",
    "build_report",
    "evaluate_claim",
    "evaluate_claims",
    "load",
    "lookup",
]
