"""Download names: safe wherever they are saved or unzipped."""

import pytest

from trialnotary.filenames import receipt_filename


@pytest.mark.parametrize(("trial", "dataset", "expected"), [
    ("NCT01234567", "ADSL", "NCT01234567_ADSL_{id}.receipt.json"),
    ("CTRI/2024/01/000123", "Données — vague 2",
     "CTRI_2024_01_000123_Donn_es___vague_2_{id}.receipt.json"),
    ("NCT01234567", "../../etc/passwd", "NCT01234567_._._etc_passwd_{id}.receipt.json"),
])
def test_receipt_filenames_keep_only_safe_characters(trial, dataset, expected):
    registration_id = "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c"
    expected_name = expected.format(id=registration_id)
    assert receipt_filename(trial, dataset, registration_id) == expected_name
