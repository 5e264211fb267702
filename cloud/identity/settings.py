"""The identity service's token settings (prefix ``POTR_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from cloud.settings import DeploymentSettings

__all__ = ["DEV_JWT_SECRET", "MAX_JWT_TTL_S", "TokenSettings"]

#: The secret every dev checkout shares: accepted only by a dev/test API on loopback.
DEV_JWT_SECRET = "potr-dev-only-jwt-secret-do-not-use-in-production"
#: Longest lifetime of a bearer token (settings and ``potr token create`` alike).
MAX_JWT_TTL_S = 3600


class TokenSettings(DeploymentSettings):
    """The bearer tokens' signing secret and lifetime; production refuses weak secrets."""

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_ttl_s: int = Field(default=900, ge=1, le=MAX_JWT_TTL_S)

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret.get_secret_value() == DEV_JWT_SECRET

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> TokenSettings:
        # Fail closed: the shared dev secret only in dev and test deployments.
        if self.uses_dev_secret and self.env not in ("dev", "test"):
            raise ValueError(
                "POTR_JWT_SECRET is the dev secret; it is accepted only with POTR_ENV=dev or"
                f" test (env={self.env})"
            )
        if self.env == "production" and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("POTR_JWT_SECRET must be at least 32 characters in production")
        return self
