"""The events the media service publishes on its `media.events` exchange (routing key =
the name). docs/asyncapi.yaml documents each one; a test keeps the two in step."""

MEDIA_STORED = "media.stored"
TOPICS = (MEDIA_STORED,)
