from django.utils.functional import SimpleLazyObject

from merumaga.delivery import domains


def held_domains(request):
    # Lazy: only the admin's pages show it (templates/admin/base_site.html), one small query.
    return {"held_domains": SimpleLazyObject(lambda: list(domains.active_holds().values()))}
