"""The notifications domain: request schemas, intake rules, queries and views."""
