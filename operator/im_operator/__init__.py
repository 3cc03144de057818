"""The imcluster Kubernetes operator (kopf): IMCluster custom resources in, gateway and logic out.

    spec        typed, defaulted view of an IMCluster body
    builders/   one pure function per child resource, and the ordered `build_all()`
    status      conditions and counts computed from the observed children
    kube        small async client for unstructured objects (server-side apply)
    reconcile   resolve references, apply, observe, patch status, post events
    handlers    kopf registration: create / update / resume and the resync timer
    __main__    the `im-operator` entry point
"""
