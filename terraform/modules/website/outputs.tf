output "bucket" {
  description = "Name of the website bucket."
  value       = google_storage_bucket.website.name
}

output "website_url" {
  description = "URL of the site's index page on the bucket's public endpoint."
  value       = "https://storage.googleapis.com/${google_storage_bucket.website.name}/index.html"
}
