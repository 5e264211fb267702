"""The location privacy notice a MOSIE acknowledges before their phone may send where
they are (issue 17). Versioned: a change of what it says is a new version, and every
employee must acknowledge the new one before their location is recorded again."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOCATION_NOTICE", "LocationNotice"]


@dataclass(frozen=True, slots=True)
class LocationNotice:
    """The notice's current ``version`` and its text per language (``en``, ``es``)."""

    version: int
    text: dict[str, str]

    def in_language(self, language: str) -> str:
        return self.text.get(language, self.text["en"])


LOCATION_NOTICE = LocationNotice(
    version=1,
    text={
        "en": (
            "When you share your location, Power on the Roof records where your phone is"
            " (latitude, longitude, accuracy and time) only while you are on duty: inside"
            " your working hours, or while a job of yours is accepted, en route or on site."
            " At any other time nothing is recorded. Dispatch uses it to send the nearest"
            " technician to a fault. Fixes are deleted after 7 days. You may withdraw this"
            " acknowledgement at any time; your location is then no longer recorded."
        ),
        "es": (
            "Cuando comparte su ubicación, Power on the Roof registra dónde está su"
            " teléfono (latitud, longitud, precisión y hora) solo mientras está de"
            " servicio: dentro de su horario, o mientras un trabajo suyo está aceptado, en"
            " camino o en la instalación. En cualquier otro momento no se registra nada."
            " Despacho la usa para enviar al técnico más cercano a una avería. Las"
            " posiciones se borran a los 7 días. Puede retirar esta confirmación cuando"
            " quiera; desde entonces su ubicación deja de registrarse."
        ),
    },
)
