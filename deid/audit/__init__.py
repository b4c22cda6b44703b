"""What a person reads later: audit records, reports, verification, references between objects."""
