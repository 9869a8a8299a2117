"""The renderer: lesson.json to MP4. Imports nothing from Flask, the database or RQ."""

from .manifest import Manifest, ManifestError, Segment, load_manifest

__all__ = ["Manifest", "ManifestError", "Segment", "load_manifest"]
