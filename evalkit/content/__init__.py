"""Content fidelity: timed phone recognition, alignment, and the phoneme hallucination detector."""

from .align import Edit, Op, align, edit_runs, phone_error_rate
from .detector import ContentEvent, ContentReport, analyze
from .lexicon import text_phones
from .phones import RECOGNIZERS, Phone, PhoneRecognizer, make_recognizer

__all__ = [
    "Phone",
    "PhoneRecognizer",
    "RECOGNIZERS",
    "make_recognizer",
    "Op",
    "Edit",
    "align",
    "edit_runs",
    "phone_error_rate",
    "text_phones",
    "ContentEvent",
    "ContentReport",
    "analyze",
]
