"""Reading with an explicit policy, atomic writes, and output paths built from new values only."""
