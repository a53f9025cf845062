"""The events the media service publishes on its `media.events` exchange (routing key =
the name). docs/asyncapi.yaml documents each one; a test keeps the two in step."""

MEDIA_RECEIVED = "media.received"  # an upload confirmed; its own handler checks and describes it
MEDIA_STORED = "media.stored"  # its bytes checked against their SHA-256
MEDIA_DESCRIBED = "media.described"  # a photo's EXIF metadata and thumbnail, after storing
TOPICS = (MEDIA_RECEIVED, MEDIA_STORED, MEDIA_DESCRIBED)
