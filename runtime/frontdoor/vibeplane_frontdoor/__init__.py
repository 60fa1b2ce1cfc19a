"""The front service: every preview host's request passes here behind the gateway.

It verifies the person with the cluster's own authentication (a TokenReview of a Kubernetes
bearer token) and authorization (a SubjectAccessReview of `get vibeapps/<app>` in the app's
namespace), remembers the answer in a short-lived HMAC-signed cookie scoped to that one app's
host, wakes a hibernated app on a visit, records gateway-seen activity, and reverse-proxies to
the preview's Service. Its signing key and its own credentials never leave this process: the
proxied request carries neither the person's token nor the cookie.

Pure parts (cookies, cache, hosts, wake, pages) import nothing beyond the standard library.
"""
