"""SkinScan training: data splits, image models, tabular models, ensemble, export and report.

The single entry point is ``python training/train.py`` (see training/README.md). Everything here
writes into ``models/``; the Rust crate reads ``models/manifest.json`` and nothing else.
"""
