// providers: the implementations behind the library's dynamic resources, one file per resource. They run
// in the engine's dynamic-provider process (loaded by ../resources.ts by package name), talk to hosts
// through ../../transport, and never echo a secret into a message.
import { Provider } from "./diff";
import { appRelease } from "./app-release";
import { hostAdoption } from "./host-adoption";
import { hostFile } from "./host-file";
import { hostPrepare } from "./host-prepare";
import { reportTransportProgressToPulumi } from "./progress";
import { randomSecret } from "./random-secret";
import { resolvedRequirements } from "./resolved-requirements";
import { serviceActivation } from "./service-activation";

/** Every provider, by the kind name used in `resources.ts`. */
export const providers: Record<string, Provider> = { hostAdoption, hostPrepare, hostFile, appRelease, serviceActivation, randomSecret, resolvedRequirements };

// Waiting for a host (sshd not up yet) and long steps show in `pulumi up` as they happen.
reportTransportProgressToPulumi();
