"""Local stand-ins for Pub/Sub, Firestore and Cloud Storage, and the processes around them."""
