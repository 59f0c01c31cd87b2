variable "project_id" {
  description = "Project of the website bucket; also the bucket-name prefix."
  type        = string
}

variable "region" {
  description = "Location of the website bucket."
  type        = string
}

variable "api_url" {
  description = "API base URL written into config.js (window.INFERENCE_CONFIG.apiBaseUrl)."
  type        = string
}

variable "source_dir" {
  description = "Absolute path of the folder whose files are uploaded (config.js excepted); a missing folder uploads nothing."
  type        = string
}

variable "public" {
  description = "Grant allUsers objectViewer on the bucket, which serving the site straight from Cloud Storage requires."
  type        = bool
}

variable "content_types" {
  description = "Content-Type per file extension for the uploaded site files; others get application/octet-stream."
  type        = map(string)
  default = {
    css  = "text/css"
    html = "text/html; charset=utf-8"
    ico  = "image/x-icon"
    jpg  = "image/jpeg"
    js   = "application/javascript"
    json = "application/json"
    png  = "image/png"
    svg  = "image/svg+xml"
    txt  = "text/plain; charset=utf-8"
    webp = "image/webp"
  }
}
