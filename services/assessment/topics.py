"""The events the assessment service publishes on `assessment.events`; docs/asyncapi.yaml
documents each one and a test keeps the two in step."""

SCORECARD_PUBLISHED = "scorecard.published"
BULLETIN_PUBLISHED = "bulletin.published"
TOPICS = (SCORECARD_PUBLISHED, BULLETIN_PUBLISHED)
