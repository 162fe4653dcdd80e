"""Translation: the engine protocol (``engine``), which engine serves each direction
(``routes``), one module per engine (``marian``, ``whisper``), and the track side:
cues read as sentences (``sentences``), translated (``track``), checked (``sanity``) and
spread back over their cues (``fit``)."""
