"""Whole-page OCR: detect text lines, fix their orientation, recognise them (PaddleOCR's system pipeline).

One file per stage: :mod:`.det_input` (resize + normalise for the detector), :mod:`.db_postprocess`
(probability map -> quadrilaterals), :mod:`.crop` (perspective crops), :mod:`.reading_order`,
:mod:`.orientation` (the line classifier's input and its 180-degree rule), :mod:`.pipeline` (``OCR``,
``ocr``), :mod:`.draw` and :mod:`.cli`.
"""
