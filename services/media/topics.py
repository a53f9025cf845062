"""The events the media service publishes on its `media.events` exchange (routing key =
the name). docs/asyncapi.yaml documents each one; a test keeps the two in step."""

MEDIA_STORED = "media.stored"
MEDIA_DESCRIBED = "media.described"  # a photo's EXIF metadata and thumbnail, after storing
TOPICS = (MEDIA_STORED, MEDIA_DESCRIBED)
