"""Intake: where objects come in (the C-STORE receiver); it only puts work on the spool."""
