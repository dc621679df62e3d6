"""memory: webMemory 512M -> 2G and back; each is a rolling replacement the engine applies."""

from rehearsal.scenarios.scenario import Scenario, Up, expect

MIB = 1024 * 1024


def limit(mb: int):
    def check(ctx, result) -> str:
        web = ctx.session.containers_of("web")
        wrong = {n: c["HostConfig"]["Memory"] // MIB for n, c in web.items() if c["HostConfig"]["Memory"] != mb * MIB}
        expect(not wrong, f"memory limits {wrong}, expected {mb} MiB")
        return f"{len(web)} web replicas limited to {mb} MiB (swap {web[min(web)]['HostConfig']['MemorySwap']})"

    return check


SCENARIO = Scenario(
    "memory",
    (
        Up("webMemory 512M -> 2G", overrides={"webMemory": "2G"}, check=limit(2048)),
        Up("webMemory 2G -> 512M", overrides={"webMemory": "512M"}, check=limit(512)),
    ),
)
