"""Documents people download, one module per kind: QR codes (``qr``), CSV and JSON listings
(``tables``), the PDF plumbing (``pdf``), the receipt PDF (``receipt_pdf``), the trial audit
report PDF (``report_pdf``) and the receipts zip (``bundle``).

Pure functions over plain data (receipt dicts and report rows), nothing about Flask or the
database. The JSON receipt stays the proof; everything here is a readable copy or a listing.
"""
