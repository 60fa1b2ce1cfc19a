"""Object storage of app bundles, revision indexes and training records (S3 via boto3)."""
