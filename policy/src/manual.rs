//! The sandguard user guide (doc-only).
