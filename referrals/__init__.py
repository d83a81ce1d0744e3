"""The referral domain: participants, codes, chains and figures. Knows nothing of Discord or SMS."""
