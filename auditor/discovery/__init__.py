"""Discovery: the SaaS vendors an organisation uses, found in its DNS records and web pages."""
