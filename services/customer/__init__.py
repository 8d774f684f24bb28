"""The customer service: registers users (`POST /users`) and announces them (`user.created`)."""
