output "database_name" {
  description = "Name of the Firestore database."
  value       = google_firestore_database.default.name
}

output "ttl_field" {
  description = "Collection and field that carry the TTL policy, as collection/field."
  value       = "${google_firestore_field.prediction_ttl.collection}/${google_firestore_field.prediction_ttl.field}"
}

output "reconcile_index_field" {
  description = "Collection and field of the reconciler's ascending single-field index, as collection/field."
  value       = "${google_firestore_field.reconcile_at.collection}/${google_firestore_field.reconcile_at.field}"
}
