/** The operator command's view of a service: {@link OperatedService} from the validated config. */
import { ServiceConfig } from "../config";
import { OperatedService, auditLogPath, envStorePath } from "../model";
import { socketUnitName } from "../systemd";
import { healthUrl } from "./plan";

function unique(names: readonly string[]): string[] {
    return [...new Set(names)];
}

/** The names and paths `status`, `logs`, `restart` and `doctor` use for `config`'s service. */
export function planOperatedService(config: ServiceConfig): OperatedService {
    const overrides = Object.values(config.overrides);
    return {
        serviceName: config.serviceName,
        unitName: `${config.serviceName}.service`,
        user: config.user,
        group: config.group,
        ...(config.app.socketActivation ? { socketUnit: socketUnitName(config) } : {}),
        healthUrl: healthUrl(config),
        healthPort: config.app.port,
        healthTimeoutSec: config.health.timeoutSec,
        envLink: config.paths.envFile,
        envStore: envStorePath(config.serviceName),
        venvPython: `${config.paths.venv}/bin/python`,
        workingDirectory: config.paths.workingDirectory,
        appModule: config.app.module.split(":")[0]!,
        releasesDir: config.paths.releases,
        auditLog: auditLogPath(config.serviceName),
        dependencies: {
            after: unique([...config.dependencies.after, ...overrides.flatMap((o) => o.after ?? [])]),
            requires: unique([...config.dependencies.requires, ...overrides.flatMap((o) => o.requires ?? [])]),
            wants: unique([...config.dependencies.wants, ...overrides.flatMap((o) => o.wants ?? [])]),
        },
    };
}
