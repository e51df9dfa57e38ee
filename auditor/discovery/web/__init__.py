"""Websites in a browser: what the organisation's pages make visitors' browsers send where, before
and after consent, judged like any other transfer."""
