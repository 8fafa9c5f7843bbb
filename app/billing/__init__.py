"""Money: plan fees, prorations and top-ups in USD cents (R19, R20, R32)."""
