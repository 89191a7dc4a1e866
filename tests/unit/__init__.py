"""The fast layer: pure rules and single-store domain tests (no process of the hotline started); under 30 s."""
