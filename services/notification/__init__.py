"""The notification service: mails customers over SMTP about their account and their orders."""
