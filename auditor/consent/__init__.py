"""Consent (Art. 49(1)(a)): its configuration section, coverage SQL, imported consents, the job."""
