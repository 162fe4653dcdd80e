"""subpipe: bilingual broadcast subtitles from Urdu and Mandarin footage."""

__version__ = "0.1.0"
