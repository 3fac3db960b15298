"""The support console: staff accounts, search, notification timelines, audit."""
