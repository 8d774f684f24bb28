"""The payment service: authorises orders through a card processor and voids cancelled ones."""
