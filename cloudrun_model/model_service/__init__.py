"""Model service: Pub/Sub push in, model prediction out to Firestore."""
